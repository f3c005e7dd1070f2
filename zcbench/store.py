"""Results store: per-architecture scores that survive kills and concurrent writers.

Layout under the results directory::

    scores/<space>/<proxy>/<run_key>.jsonl             one line per scored architecture
    scores/<space>/<proxy>/<run_key>.meta.json         what the key stands for
    scores/<space>/<proxy>/<run_key>.quarantine.jsonl  malformed lines moved out of the .jsonl
    summaries/<space>/<proxy>/<run_key>.json           correlations of the widest run

``run_key`` = ``seed<seed>-<data hash>-v<proxy version>``: a score is keyed by
(space, proxy, arch ID, seed, data config, proxy version), so a changed batch,
sequence length, corpus, tokenizer or proxy definition never mixes with old
numbers. Each finished architecture is one JSON line appended with a single
``write`` under an exclusive ``flock`` and fsynced before the next one starts:
a SIGKILL loses at most the architecture in flight, shards may append to the
same file at once, and a rerun skips every ID already present.

Reliability rules (docs/reliability.md, tests/test_store.py, tests/test_faults.py):

* An append always starts on a fresh line: under the lock, a file whose last byte
  is not a newline (a write torn by a crash of the machine) gets one first, so the
  torn fragment can never swallow the next record.
* Malformed lines (torn JSON, a JSON list, an object without ``arch_id``) are
  counted, reported once in one line and moved to ``<run_key>.quarantine.jsonl``
  (under the lock, by an atomic rename; writers re-check the file they locked).
  A record glued behind a torn fragment by older versions is recovered.
* A corrupted ``meta.json`` is rebuilt by the run that owns the key and skipped with
  one warning line by readers.
* A summary is replaced only by a run that covers at least the same architectures,
  unless the caller says it narrows them (``replace_summary=true``).
* Files keep the user's umask (``atomic_write_text`` used to leave them 0600).
* File-system failures (read-only folder, a path below a file, disk full) raise
  :class:`StoreError`, one line naming the path; what was written stays.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable


from zcbench.errors import DataError


class StoreError(DataError):
    """A results-store file could not be written or read; str() is one line naming the path.
    (A DataError, so every command already prints it as one line and exits 2.)"""


def data_key(data_cfg: dict) -> str:
    return hashlib.sha1(json.dumps(data_cfg, sort_keys=True).encode()).hexdigest()[:10]


def run_key(seed: int, data_cfg: dict, proxy_version: str) -> str:
    return f"seed{seed}-{data_key(data_cfg)}-v{proxy_version}"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux >= 4.7)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def describe_os_error(exc: OSError, path=None) -> str:
    """One line for a file-system failure: what, where, and a hint for the usual causes."""
    where = exc.filename or path
    hint = {
        errno.EROFS: "the file system is read-only; pass results_dir=<a writable folder>",
        errno.EACCES: "permission denied; pass results_dir=<a writable folder>",
        errno.EPERM: "permission denied; pass results_dir=<a writable folder>",
        errno.ENOTDIR: "a parent of this path is a file, not a folder",
        errno.EEXIST: "a file is in the way of a folder",
        errno.ENOSPC: "no space left on the device; nothing already stored was lost",
        errno.EFBIG: "file size limit reached; nothing already stored was lost",
        errno.EDQUOT: "disk quota exceeded; nothing already stored was lost",
    }.get(exc.errno, exc.strerror or type(exc).__name__)
    return f"cannot write {where}: {hint}" if where else f"results store: {hint}"


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"cannot create folder {path}: a file is in the way") from None
    except OSError as exc:
        raise StoreError(describe_os_error(exc, path)) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file.

    The result has the mode a plain ``open(path, "w")`` would give it (0666 minus the umask),
    or the mode of the file it replaces. Raises :class:`StoreError` (one line) on a
    file-system failure; the previous file is then untouched.
    """
    path = Path(path)
    _mkdir(path.parent)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~current_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise StoreError(describe_os_error(exc, path)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise StoreError(describe_os_error(exc, path)) from None
        raise


def write_if_changed(path: Path, text: str) -> bool:
    """``atomic_write_text`` unless the file already holds exactly ``text`` (a fully resumed run
    on a read-only folder then succeeds). Returns whether it wrote."""
    try:
        if Path(path).read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def _json_value(v: float):
    # JSON has no NaN/inf; keep them explicit as strings so nothing is silently coerced.
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return v


def _float(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


_RECORD_START = '{"arch_id": '  # json.dumps(sort_keys=True) of every record begins so


def parse_lines(text: str) -> tuple[list[dict], list[tuple[int, str, str]]]:
    """Split a score file into (records in file order, [(line number, line, reason)] malformed).

    A record is a JSON object with a string ``arch_id``. A line that is not one, but holds a
    whole record glued behind a torn fragment (written by versions before the fresh-line rule),
    yields that record and reports only the fragment.
    """
    recs, bad = [], []
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        rec, why = _parse(line)
        if rec is not None:
            recs.append(rec)
            continue
        start = line.find(_RECORD_START, 1)
        while start > 0:
            glued, _ = _parse(line[start:])
            if glued is not None:
                recs.append(glued)
                bad.append((i, line[:start], "torn line"))
                break
            start = line.find(_RECORD_START, start + 1)
        else:
            bad.append((i, line, why))
    return recs, bad


def _parse(line: str):
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None, "torn line"
    if not isinstance(rec, dict):
        return None, f"a JSON {type(rec).__name__}, not a record"
    if not isinstance(rec.get("arch_id"), str) or not rec["arch_id"]:
        return None, "no arch_id"
    return rec, ""


class ScoreFile:
    """Append-only JSONL of one (space, proxy, seed, data config, proxy version)."""

    def __init__(self, root: Path, space: str, proxy: str, seed: int, data_cfg: dict, proxy_version: str):
        self.dir = Path(root) / "scores" / space / safe_name(proxy)
        self.key = run_key(seed, data_cfg, proxy_version)
        self.path = self.dir / f"{self.key}.jsonl"
        self.quarantine_path = self.dir / f"{self.key}.quarantine.jsonl"
        self.meta_path = self.dir / f"{self.key}.meta.json"
        self.meta = {"space": space, "proxy": proxy, "seed": seed, "data": data_cfg, "proxy_version": proxy_version,
                     "run_key": self.key}
        self.n_quarantined = 0  # malformed lines this object moved out (or found, when it could not move them)

    def ensure_meta(self, extra: dict | None = None) -> None:
        """Write the meta file when missing; rebuild it (with one warning line) when unreadable."""
        if self.meta_path.exists():
            try:
                meta = json.loads(self.meta_path.read_text())
                if isinstance(meta, dict) and meta.get("run_key") == self.key:
                    return
                why = "does not describe this run key"
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = f"unreadable ({type(exc).__name__})"
            warnings.warn(f"{self.meta_path}: {why}; rebuilt from this run's configuration")
        atomic_write_text(self.meta_path, json.dumps({**self.meta, **(extra or {})}, indent=2, sort_keys=True))

    def read(self, quarantine: bool = True) -> dict[str, dict]:
        """arch_id -> record; first record per ID wins (shards never overlap, reruns skip).

        Malformed lines are moved to the quarantine file (reported in one warning line);
        their architectures are simply scored again by the next run. Readers that must not
        change the store (``report``) pass ``quarantine=False``: the lines are only reported.
        """
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        recs, bad = parse_lines(text)
        if bad and quarantine:
            recs = self._quarantine(recs, bad)
        elif bad:
            self._report(bad, moved=False, kept="left in place; the next `run` of this configuration moves them")
        out: dict[str, dict] = {}
        for rec in recs:
            rec["score"] = _float(rec.get("score"))  # "nan"/"inf" strings parse back to floats
            out.setdefault(rec["arch_id"], rec)
        return out

    def _quarantine(self, recs, bad):
        """Under the lock: re-read, move what is still malformed to the side file, keep the rest."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            fd = None
        if fd is None:
            self._report(bad, moved=False)
            return recs
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "rb", closefd=False) as f:
                text = f.read().decode("utf-8", errors="replace")
            recs, bad = parse_lines(text)
            if not bad:
                return recs
            try:
                q = "".join(json.dumps({"line": i, "reason": why, "text": line}, sort_keys=True) + "\n"
                            for i, line, why in bad)
                qfd = os.open(self.quarantine_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                try:
                    _write_all(qfd, q.encode())
                    os.fsync(qfd)
                finally:
                    os.close(qfd)
                kept = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
                atomic_write_text(self.path, kept)  # writers re-check the inode after locking
                self._report(bad, moved=True)
            except (OSError, StoreError):
                self._report(bad, moved=False)
            return recs
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _report(self, bad, moved: bool, kept: str = "left in place (the folder is not writable)") -> None:
        self.n_quarantined += len(bad)
        reasons: dict[str, int] = {}
        for _, _, why in bad:
            reasons[why] = reasons.get(why, 0) + 1
        what = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        lines = ", ".join(str(i) for i, _, _ in bad[:5]) + (" ..." if len(bad) > 5 else "")
        where = f"moved to {self.quarantine_path}" if moved else kept
        warnings.warn(f"{self.path}: {len(bad)} malformed line(s) ({what}; line {lines}) {where}; "
                      f"their architectures are scored again")

    def append(self, record: dict) -> None:
        _mkdir(self.dir)
        rec = {k: _json_value(v) for k, v in record.items()}
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        try:
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                # a quarantine replaced the file between our open and our lock: append to the new one
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.path)) from None
        size = None
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn last line gets its own line; this record starts fresh
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            if size is not None:  # disk full mid-record: take the partial record back (we hold the lock)
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise StoreError(describe_os_error(exc, self.path)) from None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # os.write may write less than asked (signals, full pipes on odd file systems)
        view = view[os.write(fd, view):]


def safe_name(name: str) -> str:
    """File-system-safe form of a proxy name such as ``rankfuse:[ntkt,sept]``."""
    keep = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)
    if keep == name:
        return name
    return f"{keep}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


_safe = safe_name  # the old private name, still imported by report/leaderboard


def iter_score_files(root: Path, space: str | None = None) -> Iterable[tuple[dict, Path]]:
    """Yield (meta, jsonl path) for every score file under ``root``.

    A corrupted meta file is skipped with one warning line naming it (the next ``run`` of that
    configuration rebuilds it); it never stops the other files from being read.
    """
    base = Path(root) / "scores"
    pattern = f"{space}/*/*.meta.json" if space else "*/*/*.meta.json"
    for meta_path in sorted(base.glob(pattern)):
        try:
            meta = json.loads(meta_path.read_text())
            ok = isinstance(meta, dict) and all(k in meta for k in ("space", "proxy", "seed", "run_key"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if not ok:
            warnings.warn(f"{meta_path}: corrupted metadata, its scores are skipped; rerun the same "
                          f"`run` configuration to rebuild it")
            continue
        yield meta, meta_path.with_name(meta_path.name[: -len(".meta.json")] + ".jsonl")


def summary_path(root: Path, space: str, proxy: str, key: str) -> Path:
    return Path(root) / "summaries" / space / safe_name(proxy) / f"{key}.json"


def write_summary(path: Path, summary: dict, arch_ids: Iterable[str], replace: bool = False) -> str:
    """Store a run's summary unless that would replace a wider one; returns "written", "unchanged"
    or a one-line note saying why the existing summary was kept.

    ``summary`` gets ``arch_ids`` (sorted). An existing summary is replaced when it is unreadable,
    when its architectures are a subset of this run's (summaries written before this rule carry
    no IDs: then its ``n_scored`` must not exceed this run's), or when ``replace`` is true
    (the caller said it narrows the run).
    """
    path = Path(path)
    ids = sorted(arch_ids)
    summary = {**summary, "arch_ids": ids}
    if not replace and path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if isinstance(old, dict):
            old_ids = old.get("arch_ids")
            if isinstance(old_ids, list):
                narrower = not set(old_ids) <= set(ids)
                n_old = len(old_ids)
            else:
                n_old = old.get("n_scored") if isinstance(old.get("n_scored"), int) else 0
                narrower = n_old > len(ids)
            if narrower:
                return (f"kept the existing summary {path} (it covers {n_old} architectures, this run "
                        f"{len(ids)} not all of them); pass replace_summary=true to replace it")
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    return "written" if write_if_changed(path, text) else "unchanged"
