"""Content-keyed cache of the report's per-(space, proxy) rows ("instant reports", issue #18).

The expensive part of :func:`zcbench.report.build` is the bootstrap of each row (rho/tau
CIs, the paired test against the baseline). A row is a pure function of

* the bytes of its score files (and of the baseline's, for the paired test) and their metadata,
* the space's oriented ground truth on those architectures (metric, direction, values),
* the options (label, baseline, bootstrap resamples and seed),
* the code that computes it (``zcbench/metrics.py`` and ``zcbench/report/tables.py``),

so the row is stored under ``<results_dir>/cache/report/<sha256 of all that>.json`` and reused
when every input is byte-identical; a changed score file, ground truth, option or statistic's
code gives a new key, never a stale row. The cache is not committed (``.gitignore``); deleting
it only costs time; an unwritable results dir simply means no caching. ``ZCBENCH_NO_CACHE=1``
or ``build(..., cache=False)`` turns it off. (tests/test_report.py::test_cached_rows_equal_fresh_rows)
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

_CODE: str | None = None


def code_fingerprint() -> str:
    """sha256 of the source of the modules that compute a row."""
    global _CODE
    if _CODE is None:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for p in (here.parent / "metrics.py", here / "tables.py"):
            h.update(p.read_bytes())
        _CODE = h.hexdigest()
    return _CODE


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


class RowCache:
    """Rows by content key under ``<results_dir>/cache/report/`` (hits and misses are counted)."""

    def __init__(self, results_dir, enabled: bool = True):
        self.dir = Path(results_dir) / "cache" / "report"
        self.enabled = enabled and os.environ.get("ZCBENCH_NO_CACHE", "") in ("", "0")
        self.hits = self.misses = 0
        self._file_hash: dict = {}

    def file_hash(self, path: Path) -> str:
        path = Path(path)
        if path not in self._file_hash:
            try:
                self._file_hash[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                self._file_hash[path] = "unreadable"
        return self._file_hash[path]

    def key(self, parts: dict) -> str:
        blob = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        if not self.enabled:
            return None
        try:
            row = json.loads((self.dir / f"{key}.json").read_text())
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return row  # NaN round-trips through Python's json as NaN

    def put(self, key: str, row: dict) -> None:
        if not self.enabled:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(row, sort_keys=True, default=_jsonable))
            os.replace(tmp, self.dir / f"{key}.json")
        except OSError:  # read-only results dir, disk full: no cache, same answer
            pass
