"""Download the upstream ground-truth tables into the data directory, checked by sha256.

The manifest shipped beside this module (``zcbench/manifest.json``) pins, for each
table, the upstream repository and commit and lists every file with its upstream
path, its path under the data directory and its sha256. Files are fetched
verbatim; nothing is converted, so the importers in :mod:`zcbench.data` read
exactly what upstream published.

URLs. By default a file comes from GitHub's raw host at the pinned commit::

    https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<upstream path>

With a mirror (the ``base_url`` argument, else the ``ZCBENCH_MIRROR`` environment
variable) the file URL is instead ``<base_url>/<local path>``: a mirror serves
the data-directory layout (``lts/random_GPT2_wt103/...``, ``flexibert/...``), so
any copy of a data directory behind a static HTTP server — or a ``file://`` URL
of one — is a valid mirror. The sha256 check is the same either way.

Writing. Each file is streamed into a hidden temporary file in its destination
folder, hashed while it streams, and renamed over the target only when the
hash matches; on any failure the temporary file is removed, so the data
directory never holds a partial or unverified file. Files already present with
the right hash are skipped (no network needed); a present file with a wrong
hash is downloaded again.

Tables and their provenance are documented in ``docs/data.md``.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Callable

from zcbench.config import resolve_data_dir
from zcbench.errors import DataError

MANIFEST = Path(__file__).with_name("manifest.json")
MIRROR_ENV = "ZCBENCH_MIRROR"
CHUNK = 1 << 16
TIMEOUT_S = 60.0
DEFAULT_WORKERS = 8


@lru_cache(maxsize=1)
def _manifest() -> dict:
    try:
        with open(MANIFEST, encoding="utf-8") as f:
            man = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the data manifest {MANIFEST}: {exc}") from None
    if man.get("format") != 1 or not isinstance(man.get("tables"), dict):
        raise DataError(f"unsupported data manifest {MANIFEST}: expected format 1 with a 'tables' mapping")
    return man


def list_tables() -> list[str]:
    """Names of the downloadable tables, in manifest order."""
    return list(_manifest()["tables"])


def table_info(table: str) -> dict:
    """A copy of one table's manifest entry (description, folder, repo, commit, license, cite, notes, files)."""
    tables = _manifest()["tables"]
    if table not in tables:
        raise DataError(f"unknown data table {table!r}; valid tables: {', '.join(tables)}")
    return json.loads(json.dumps(tables[table]))


def file_url(table: str, local_path: str, base_url: str | None = None) -> str:
    """URL of one manifest file: the pinned GitHub raw URL, or ``base_url/<local path>`` for a mirror."""
    info = table_info(table)
    for entry in info["files"]:
        if entry["path"] == local_path:
            return _url(info, entry, _mirror(base_url))
    raise DataError(f"{local_path} is not a file of data table {table!r}")


def _mirror(base_url: str | None) -> str | None:
    base = base_url or os.environ.get(MIRROR_ENV) or None
    return base.rstrip("/") if base else None


def _url(info: dict, entry: dict, mirror: str | None) -> str:
    if mirror:
        return f"{mirror}/{urllib.parse.quote(entry['path'])}"
    return _manifest()["url"].format(repo=info["repo"], commit=info["commit"],
                                     upstream=urllib.parse.quote(entry["upstream"]))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _target(root: Path, local: str) -> Path:
    # Manifest paths are relative POSIX paths inside the data dir; refuse anything else.
    p = Path(*local.split("/"))
    if p.is_absolute() or ".." in p.parts:
        raise DataError(f"unsafe path {local!r} in data manifest {MANIFEST}")
    return root / p


def verify(table: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Check every file of ``table`` under the data dir; returns one line per problem ([] = all good)."""
    info = table_info(table)
    root = resolve_data_dir(data_dir)
    problems = []
    for entry in info["files"]:
        path = _target(root, entry["path"])
        if not path.is_file():
            problems.append(f"missing {path}")
            continue
        got = sha256_file(path)
        if got != entry["sha256"]:
            problems.append(f"sha256 mismatch {path}: expected {entry['sha256']}, got {got}")
    return problems


def _download(url: str, target: Path, entry: dict) -> int:
    """Stream ``url`` into ``target`` via a temporary file; returns the byte count. Raises DataError."""
    local = entry["path"]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never follow or reuse anything; mode 0o666 so the umask decides, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise DataError(f"cannot write {target}: {_one_line(exc.strerror or exc)}") from None
    h = hashlib.sha256()
    n = 0
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "zcbench-fetch"})
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
                        h.update(block)
                        n += len(block)
            except urllib.error.HTTPError as exc:
                what = "not found" if exc.code == 404 else "download failed"
                raise DataError(f"{what}: {local} (HTTP {exc.code} from {url})") from None
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, FileNotFoundError):  # file:// mirrors
                    raise DataError(f"not found: {local} (no file at {url})") from None
                raise DataError(f"download failed: {local} ({_one_line(reason)} for {url})") from None
            except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
                raise DataError(f"download failed: {local} ({_one_line(exc)} for {url})") from None
        got = h.hexdigest()
        if got != entry["sha256"]:
            raise DataError(f"sha256 mismatch: {local} from {url} has {got[:16]}..., manifest expects "
                            f"{entry['sha256'][:16]}... ({n} bytes, expected {entry['size']}); nothing was written")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return n


def _one_line(x) -> str:
    return " ".join(str(x).split()) or type(x).__name__


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch(table: str, dest: str | os.PathLike | None = None, base_url: str | None = None, *,
          progress: Callable[[str], None] | None = _stderr, workers: int = DEFAULT_WORKERS) -> Path:
    """Download one table into the data dir and return the table's folder (e.g. ``<dest>/lts/random_GPT2_wt103``).

    ``dest`` is the data dir (default: :func:`zcbench.data.resolve_data_dir`, i.e. ``ZCBENCH_DATA`` or the
    cache). ``base_url`` (default: env ``ZCBENCH_MIRROR``) replaces GitHub by a mirror serving the
    data-dir layout. ``progress`` gets one line per file (``None`` silences it). Raises
    :class:`zcbench.data.DataError` (one line naming the file) on an unknown table, a missing file or a
    sha256 mismatch; files finished before the error stay (they are verified), the failed one leaves nothing.
    """
    info = table_info(table)
    root = resolve_data_dir(dest)
    mirror = _mirror(base_url)
    say = progress or (lambda line: None)
    files = info["files"]
    total = len(files)
    width = len(str(total))
    source = mirror or f"github.com/{info['repo']}@{info['commit'][:10]}"
    say(f"fetching {table} ({total} files) from {source} into {root}")

    done = 0
    todo = []
    for entry in files:
        target = _target(root, entry["path"])
        if target.is_file():
            if sha256_file(target) == entry["sha256"]:
                done += 1
                say(f"[{done:>{width}}/{total}] {entry['path']}: present, sha256 ok")
                continue
            say(f"{entry['path']}: present with a wrong sha256, will download it again")
        todo.append((entry, target))

    if todo:
        with cf.ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            futures = {pool.submit(_download, _url(info, e, mirror), t, e): e for e, t in todo}
            try:
                for fut in cf.as_completed(futures):
                    n = fut.result()
                    done += 1
                    say(f"[{done:>{width}}/{total}] {futures[fut]['path']}: downloaded {_size(n)}, sha256 ok")
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return _target(root, info["folder"])


def fetch_all(dest: str | os.PathLike | None = None, base_url: str | None = None, **kw) -> list[Path]:
    """Fetch every table in manifest order; returns their folders."""
    return [fetch(t, dest, base_url, **kw) for t in list_tables()]


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1_000_000:.1f} MB"


# ---- verify-on-read: the files a run uses are the pinned upstream files (docs/reliability.md) ----
ALLOW_MODIFIED_ENV = "ZCBENCH_ALLOW_MODIFIED_DATA"
_verified: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256 seen
_allow_modified = False
_modified_seen: dict[str, str] = {}  # path -> one-line description, while modified data is allowed


@lru_cache(maxsize=1)
def _manifest_index() -> dict[str, dict]:
    """Manifest local path (``lts/random_GPT2_wt103/ppl_summary.yaml``) -> its file entry."""
    return {e["path"]: e for info in _manifest()["tables"].values() for e in info["files"]}


def manifest_entry(path: str | os.PathLike) -> dict | None:
    """The manifest entry whose local path is a suffix of ``path`` (a file in the data-dir layout),
    or None for a file the manifest does not pin (project tables, embedded tables, user copies
    under other folder names)."""
    parts = Path(os.path.abspath(path)).parts
    index = _manifest_index()
    for k in range(1, len(parts)):
        e = index.get("/".join(parts[k:]))
        if e is not None:
            return e
    return None


def allow_modified_data(flag: bool = True) -> None:
    """Let reads of pinned files whose sha256 differs go on (recorded; see :func:`modified_files`).
    Process-wide; the runner sets it from ``allow_modified_data=true``. The environment variable
    ``ZCBENCH_ALLOW_MODIFIED_DATA=1`` does the same for every command (``report``, ``leaderboard``)."""
    global _allow_modified
    _allow_modified = bool(flag)
    if not flag:
        _modified_seen.clear()


def modified_files() -> list[str]:
    """One line per pinned file read with a different sha256 while modified data was allowed."""
    return [_modified_seen[p] for p in sorted(_modified_seen)]


def verify_files(paths) -> None:
    """Check each file that the manifest pins against its sha256 (cached by path, mtime and size).

    A mismatch raises :class:`DataError` naming the file, unless modified data is allowed
    (:func:`allow_modified_data` or env ``ZCBENCH_ALLOW_MODIFIED_DATA=1``): then it is recorded
    and the read goes on. Files the manifest does not pin are not checked here (project-built
    tables carry their own checks). Missing files are the reader's business.
    """
    allow = _allow_modified or os.environ.get(ALLOW_MODIFIED_ENV, "") not in ("", "0", "false")
    for path in paths:
        entry = manifest_entry(path)
        if entry is None:
            continue
        p = os.path.abspath(path)
        try:
            st = os.stat(p)
        except OSError:
            continue
        key = (p, st.st_mtime_ns, st.st_size)
        got = _verified.get(key)
        if got is None:
            got = sha256_file(p) if st.st_size == entry["size"] else f"size {st.st_size}"
            _verified[key] = got
        if got == entry["sha256"]:
            continue
        what = (f"{p} is not the pinned upstream file {entry['path']} "
                + (f"(size {st.st_size} bytes, manifest {entry['size']})" if got.startswith("size")
                   else f"(sha256 {got[:12]}..., manifest {entry['sha256'][:12]}...)"))
        if allow:
            _modified_seen[p] = what
            continue
        raise DataError(f"{what}; restore it with `python -m zcbench data fetch` (data verify lists all), or "
                        f"pass allow_modified_data=true (env {ALLOW_MODIFIED_ENV}=1) to use it anyway")
