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
        _CODE = _fingerprint_files((here.parent / "metrics.py", here / "tables.py"))
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


def _fingerprint_files(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def frame_digest(df) -> str:
    """sha256 of a DataFrame's content (index, columns, values): what a figure is drawn from."""
    import pandas as pd

    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    if len(df):
        try:
            h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
        except TypeError:  # unhashable cells (lists, dicts): their text
            h.update(df.to_csv().encode())
    return h.hexdigest()


class FileCache:
    """Generated files (figures) by content key under ``<results_dir>/cache/<kind>/``.

    ``restore(key, folder)`` copies the files stored under ``key`` into ``folder`` and returns
    their paths (None on a miss); ``save(key, files)`` stores what a drawing function wrote —
    none is a valid answer too (a figure without data). The key is the caller's description of
    everything the files are drawn from (:func:`frame_digest` of the rows, options) plus the
    drawing code (``code`` files) and the matplotlib version, so a changed input or plotting
    change redraws, and an unchanged one copies (issue #18: figures only redrawn when their
    data changed). Same switches as :class:`RowCache` (``ZCBENCH_NO_CACHE=1``); a read-only
    results dir means no caching, never a failure."""

    def __init__(self, results_dir, kind: str, code=(), enabled: bool = True):
        self.dir = Path(results_dir) / "cache" / kind
        self.enabled = enabled and os.environ.get("ZCBENCH_NO_CACHE", "") in ("", "0")
        self.hits = self.misses = 0
        try:
            import matplotlib

            mpl = matplotlib.__version__
        except ImportError:  # pragma: no cover - figures need matplotlib anyway
            mpl = ""
        self._code = _fingerprint_files(code) + mpl

    def key(self, *parts) -> str:
        blob = json.dumps([self._code, *parts], sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()

    def restore(self, key: str, folder: Path) -> list[Path] | None:
        if not self.enabled:
            return None
        try:
            names = json.loads((self.dir / f"{key}.json").read_text())["files"]
            out = []
            for name in names:
                src = self.dir / key / name
                dst = Path(folder) / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
                out.append(dst)
        except (OSError, ValueError, KeyError):
            self.misses += 1
            return None
        self.hits += 1
        return out

    def save(self, key: str, files, folder: Path) -> None:
        if not self.enabled:
            return
        try:
            (self.dir / key).mkdir(parents=True, exist_ok=True)
            names = []
            for f in files:
                name = str(Path(f).relative_to(folder))
                (self.dir / key / name).parent.mkdir(parents=True, exist_ok=True)
                (self.dir / key / name).write_bytes(Path(f).read_bytes())
                names.append(name)
            tmp = self.dir / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"files": names}))
            os.replace(tmp, self.dir / f"{key}.json")  # the manifest last: a half-saved entry is a miss
        except (OSError, ValueError):
            pass

    def draw(self, key: str, folder: Path, fn) -> list[Path]:
        """The files ``fn()`` writes into ``folder`` (a list of paths), from the cache when ``key`` is known."""
        got = self.restore(key, folder)
        if got is not None:
            return got
        written = [Path(p) for p in (fn() or [])]
        self.save(key, written, Path(folder))
        return written


# ----------------------------------------------------------------------------- up-to-date check
STAMP = ".inputs.sha256"  # in an output folder: the fingerprint of the inputs it was built from
_SKIP_DIRS = {"cache", "multirun", "summaries", "runs", "__pycache__", ".pytest_cache"}


def _hash_tree(h, root: Path, skip: tuple = (), content: bool = True) -> None:
    root = Path(root)
    if not root.is_dir():
        h.update(f"missing:{root}".encode())
        return
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if n not in _SKIP_DIRS and not n.endswith((".building", ".old"))
                             and not any((d / n).resolve() == s for s in skip))
        for name in sorted(filenames):
            if name == STAMP or name.endswith((".pyc", ".tmp")):
                continue
            p = d / name
            h.update(str(p.relative_to(root)).encode() + b"\0")
            try:
                if content:
                    h.update(hashlib.sha256(p.read_bytes()).digest())
                else:
                    st = p.stat()
                    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"unreadable")


def inputs_fingerprint(results_dir, out, options: dict, data_dir=None, extra_dirs=()) -> str:
    """sha256 of everything a report or site build reads, so that an unchanged state can skip the
    build (issue #18, "second build <= 5 s"): the command's options; the source of the ``zcbench``,
    ``proxies`` and ``spaces`` packages and ``conf/``; the installed proxy/space entry points and
    the versions of the numerical and plotting libraries; every file under ``results_dir`` (by
    content) except caches, run logs and outputs (the output folder, ``report/``, ``site/``); the files of the ground-truth
    data folder (by size and modification time) and ``extra_dirs`` (e.g. submissions)."""
    import importlib.util
    from importlib import metadata

    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for pkg in ("zcbench", "proxies", "spaces"):
        spec = importlib.util.find_spec(pkg)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if Path(loc).name == pkg:  # (a checkout adds its root to zcbench's path for conf/: hashed below)
                _hash_tree(h, Path(loc))
    from zcbench.config import conf_dir

    _hash_tree(h, Path(conf_dir()))
    try:
        eps = metadata.entry_points()
        for group in ("zcbench.proxies", "zcbench.spaces"):
            for ep in sorted(eps.select(group=group), key=lambda e: e.name):
                dist = getattr(ep, "dist", None)
                h.update(f"{group}:{ep.name}={ep.value}@{getattr(dist, 'version', '')}".encode())
    except Exception:  # noqa: BLE001 - a broken installation is a changed input
        h.update(b"entry points unreadable")
    for lib in ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "torch", "pyyaml"):
        try:
            h.update(f"{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=none".encode())
    # outputs are not inputs: this command's folder, and the report's and the site's default folders
    # (neither job reads the other's output)
    rd = Path(results_dir)
    _hash_tree(h, rd, skip=(Path(out).resolve(), (rd / "report").resolve(), (rd / "site").resolve()))
    try:
        from zcbench.data import resolve_data_dir

        data = Path(resolve_data_dir(data_dir))
    except Exception:  # noqa: BLE001 - no data dir: the embedded tables (package source, hashed above)
        data = None
    h.update(f"data:{data}".encode())
    if data is not None:
        _hash_tree(h, data, content=False)
    for d in extra_dirs:
        _hash_tree(h, Path(d))
    return h.hexdigest()


def up_to_date(out, fingerprint: str) -> bool:
    """True when ``out`` was built (completely) from inputs with this fingerprint."""
    try:
        return (Path(out) / STAMP).read_text().strip() == fingerprint
    except OSError:
        return False


def write_stamp(out, fingerprint: str) -> None:
    try:
        (Path(out) / STAMP).write_text(fingerprint + "\n")
    except OSError:
        pass
