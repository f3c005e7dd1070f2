"""Ground-truth importers for upstream benchmark formats, read from a data directory.

The data directory holds upstream files verbatim in their upstream layout
(``flexibert/BERT_benchmark.json``, ``lts/random_GPT2_wt103/...`` (read by
``zcbench.spaces._lts``),
``text/wikitext-2/...``). It is, in order of precedence: the ``data_dir``
argument (Hydra key ``data_dir``), the ``ZCBENCH_DATA`` environment variable,
or the download cache filled by ``python -m zcbench data fetch`` (see
``zcbench.fetch``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml


from zcbench.errors import DataError  # noqa: E402,F401  (defined in zcbench.errors; importable here as before)


# Where the data dir and the cache are: zcbench.config (importable from here as before).
from zcbench.config import cache_dir, resolve_data_dir  # noqa: E402,F401


def _need(path: Path, hint: str = "") -> Path:
    if not path.exists():
        extra = f" ({hint})" if hint else ""
        raise DataError(f"missing data file {path}{extra}; set data_dir=... or ZCBENCH_DATA, or run `python -m zcbench data fetch`")
    return path


def load_yaml(path: Path):
    """Parse a YAML data file; a file the manifest pins must also match its sha256
    (``zcbench.fetch.verify_files``, checked after parsing so a malformed file is named as such)."""
    try:
        with open(_need(path)) as f:
            out = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise DataError(f"malformed YAML in {path}: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError as exc:  # e.g. a flipped bit (bench/fault_injection.py found it)
        raise DataError(f"malformed YAML in {path}: not UTF-8 text at byte {exc.start}") from None
    from zcbench.fetch import verify_files

    verify_files([path])
    return out


# LTS tables (``lts/<table>/config_<i>/j<k>/model_config.yaml`` + summaries) are read by
# ``zcbench.spaces._lts.read_lts_table``, next to the spaces that use them.


def read_nasbench_bert(path: str | os.PathLike) -> list[dict]:
    """Read NAS-Bench-BERT's ``BERT_benchmark.json`` (list of {id, scores, hparams})."""
    path = _need(Path(path))
    try:
        with open(path) as f:
            rows = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"malformed JSON in {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and "scores" in r and "hparams" in r
                                                         for r in rows):
        raise DataError(f"malformed NAS-Bench-BERT table {path}: expected a list of records with scores and hparams")
    from zcbench.fetch import verify_files

    verify_files([path])
    return rows


# ---- project-built ground-truth tables (``python -m zcbench groundtruth build``, docs/groundtruth.md) ----
@dataclass
class GroundTruthArch:
    arch_id: str
    genes: dict
    seeds: dict  # training seed -> metric value
    params: int | None
    train_seconds: dict  # training seed -> seconds

    @property
    def mean(self) -> float:
        vals = list(self.seeds.values())
        return sum(vals) / len(vals)


@dataclass
class GroundTruthTable:
    path: Path  # the table folder
    meta: dict  # table.yaml
    archs: list  # GroundTruthArch, in first-appearance order
    n_rows: int

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    @property
    def space(self) -> str:
        return str(self.meta["space"])

    @property
    def space_options(self) -> dict:
        return dict(self.meta.get("space_options") or {})

    @property
    def metric(self) -> str:
        return str(self.meta["metric"])

    @property
    def higher_is_better(self) -> bool:
        return bool(self.meta["higher_is_better"])


def resolve_table(ref: str | os.PathLike, results_dir: str | os.PathLike | None = None) -> Path:
    """A table folder (holding ``table.yaml``) given as a path or as a name under ``<results>/groundtruth/``."""
    p = Path(ref).expanduser()
    candidates = [p] + [Path(root) / "groundtruth" / str(ref) for root in (results_dir, "results") if root]
    for c in candidates:
        if (c / "table.yaml").is_file():
            return c.resolve()
    raise DataError(f"no ground-truth table {str(ref)!r}: expected a folder with table.yaml, or a name under "
                    f"{Path(results_dir or 'results') / 'groundtruth'}/")


def read_groundtruth_table(folder: str | os.PathLike) -> GroundTruthTable:
    """Read ``table.yaml`` + ``table.jsonl`` (one row per (arch, training seed)) of a project-built table.

    The first row of each (arch_id, seed) wins (a duplicate can only come from two builds of
    the same shard at once). A missing or malformed file raises a one-line DataError.
    """
    folder = Path(folder)
    meta = load_yaml(folder / "table.yaml")
    need = ("space", "metric", "higher_is_better")
    if not isinstance(meta, dict) or any(k not in meta for k in need):
        raise DataError(f"malformed ground-truth table header {folder / 'table.yaml'}: needs {', '.join(need)}")
    metric = str(meta["metric"])
    rows_path = folder / "table.jsonl"
    archs: dict[str, GroundTruthArch] = {}
    n_rows = 0
    if rows_path.exists():
        for i, line in enumerate(rows_path.read_text().split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                arch_id, genes, seed, value = row["arch_id"], row["genes"], int(row["seed"]), float(row[metric])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"malformed row at line {i} of {rows_path}: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())}") from None
            if not isinstance(genes, dict):
                raise DataError(f"malformed row at line {i} of {rows_path}: genes must be a mapping")
            a = archs.setdefault(arch_id, GroundTruthArch(arch_id, genes, {}, row.get("params"), {}))
            if seed not in a.seeds:
                a.seeds[seed] = value
                a.train_seconds[seed] = row.get("train_seconds")
                n_rows += 1
    return GroundTruthTable(path=folder, meta=meta, archs=list(archs.values()), n_rows=n_rows)
